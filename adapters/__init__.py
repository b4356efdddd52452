"""Adapters to the world outside the domain: password hashing and access tokens, file storage (local or
bucket), file-type sniffing."""
