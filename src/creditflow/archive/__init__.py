"""`creditflow archive`: old months of history exported to files, then removed from the database."""
