"""Voice menus: what a caller hears and presses, per hotline number.

The menu side of a call. It receives an AGI session from `hotline.agi` and drives it; it never
touches a socket itself.
"""
