"""advbench's built-in models and attacks, each a small plugin using the public hooks."""
