"""The operator console: FastAPI routes and templates for 120 operators, officials and admins."""
