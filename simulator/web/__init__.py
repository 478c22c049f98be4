"""The HTTP faces of the simulator: the public Amps API and the `/_sim` control API."""
