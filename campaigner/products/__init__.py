"""What customers bought: categories, "bought" tests for audiences and rules, favourites,
and how long a product lasts before it is bought again."""
