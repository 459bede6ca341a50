"""The OCI Distribution API (/v2) as plain Django views."""
