"""Package signatures: the XML-DSig check and signing (xmldsig), certificate trust, verifier."""
