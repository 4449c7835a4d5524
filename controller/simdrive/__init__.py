"""The simulator drivers that know the product: the live day, its KPIs, and the glue that maps
the product's `Settings` onto the plain arguments of `pbxsim`."""
