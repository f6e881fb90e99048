"""Wire models of Lapis' own REST API (``/api/v1``), shared by the server and the SDK."""
