"""The operator console (`/console`, SPEC §4.3, issue #13): server-rendered pages for the
people who run a node — overview charts, message search and timelines, replay and cancel,
stuck deliveries, the directory, systems, peers, the trust store, reports, the audit trail.

Pages are Jinja2 templates (package data) with no script: forms post back and the server
answers with the next page. Vietnamese first, English with `?lang=en`.

    app        the console application mounted under /console: error pages, headers
    session    the signed session cookie
    csrf       form tokens and the same-origin check
    auth       sign-in credentials, the signed-in operator of each request
    forms      small url-encoded form bodies
    i18n       the words, per language
    charts     server-side SVG charts
    render     templates and what every page knows
    pages/     one module per page group
"""
