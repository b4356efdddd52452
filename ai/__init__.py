"""Everything AI in one place: the model port (the only module importing openai), the generation runner,
stream leases, token budgets, metrics, and the local stand-in server."""
