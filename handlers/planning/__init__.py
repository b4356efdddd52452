"""Weekly planning: place chosen templates into next week, by heuristic or by model."""
