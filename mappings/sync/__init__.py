"""Med sync rules as data: defaults, per-payer and per-state rules, drug classes and dispensing units."""
