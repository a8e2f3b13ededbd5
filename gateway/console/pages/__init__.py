"""The console's pages, one module per page group; each an `APIRouter` the console app
(`gateway.console.app`) includes."""
