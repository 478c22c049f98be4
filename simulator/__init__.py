"""amps-sim: simulated FoxESS-class batteries behind a fake of the Amps device-control API."""
