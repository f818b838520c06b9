"""Authorization: route declarations and the Casbin engine."""
