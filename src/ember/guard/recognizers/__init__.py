"""The built-in recognizers, one module each, registered with ``@register`` when imported.

``ember.plugins.BUILTIN_MODULES`` lists them; its order is the registry's, which settles ties
between equal spans (an 18-digit number that passes both the ID-card and the Luhn check is
an ID card), so it is kept by hand rather than sorted.
"""
