"""The .arch grammar, shipped as package data (arch.lark)."""
