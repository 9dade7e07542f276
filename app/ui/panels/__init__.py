"""Side panels of the studio page; each builds its components and wires its own events."""
