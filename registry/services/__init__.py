"""Registry business logic as plain functions, called alike by the /v2 views,
the API, the admin, tasks and management commands."""
