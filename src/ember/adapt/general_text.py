"""A general English text, unrelated to any training set: its perplexity before and after
fine-tuning shows how much general language the model forgot (catastrophic forgetting)."""

GENERAL_TEXT = """\
Rivers have shaped where people live for as long as there have been towns. A river brings
fresh water for drinking and farming, carries boats and goods, and floods the valley with
rich soil every few years. Many old cities grew at the place where a road crossed a river,
because travellers had to stop there, and markets appeared to serve them.

The weather of a place depends on how far it lies from the equator, how high it is, and how
close it is to the sea. Coastal towns have milder winters and cooler summers than inland
towns at the same latitude, because water warms and cools more slowly than land. Mountains
force moist air upwards, where it cools and falls as rain on one side, leaving the other
side dry.

Learning a musical instrument takes patience. A beginner practises scales slowly, listens
carefully, and repeats the hard passages until the fingers remember them. Teachers often
say that twenty minutes every day is worth more than three hours once a week, because the
brain keeps working on a skill while we sleep.

Bread is made from flour, water, salt and yeast. The yeast eats the sugars in the dough and
releases gas, which makes the dough rise. Kneading builds a network of gluten that traps the
gas, and baking sets the structure, so that the loaf keeps its shape when it cools.
"""
