"""Routing: providers, the routing policy, target health, keys, limits and the cache."""
