"""The market: the public library of template processes and each user's collections."""
