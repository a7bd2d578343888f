"""The spec library, shipped inside the package so `archdsl.specs` files work from a wheel."""
