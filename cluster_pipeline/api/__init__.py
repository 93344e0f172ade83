"""The HTTP face: Mixpeek's clustering API over the application service (``create_app``)."""
