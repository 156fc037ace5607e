"""Routing: the router and remote generation, providers, the routing policy, target health,
keys, limits and the cache."""
