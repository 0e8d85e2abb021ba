"""Add-on providers: the service catalog, names, and the Postgres provisioner and cluster."""
