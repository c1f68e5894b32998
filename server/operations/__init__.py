"""Operations on the warehouse that the CLI and the admin routes run: validate, plan, apply,
verify and repair rollups, and load the demo data."""
