"""The partner's optimiser: plans overnight charges and books them through the Amps API."""
