"""Authentication schemes: one module per scheme behind the :class:`~.base.Scheme` protocol."""
