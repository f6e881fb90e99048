"""The workspace server: FastAPI routers over the services."""
