"""Pages: the blueprints, their forms and views, the webhooks, and what wraps requests."""
