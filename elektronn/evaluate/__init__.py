"""``elektronn-evaluate``: score predictions against labels, and a net over a whole data split."""
