"""The ledger in a database: the only package that speaks SQL."""
