"""The acme example: stores, employees, managers and an auditor, guarded by Casbin."""
