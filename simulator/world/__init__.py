"""The world: every tenant by API key (:mod:`.tenants`), each with its clock, devices and platform."""
