"""The acme example: stores, employees, managers and an auditor, guarded by Casbin."""

from .app import create_app as create_app

__all__ = ["create_app"]
