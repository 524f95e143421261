"""Data, trajectory synthesis, SFT, PRM and ORM training (not built yet)."""
