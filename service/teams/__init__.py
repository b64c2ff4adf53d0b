"""Teams: stores, squads and staff groups; membership with its history."""
