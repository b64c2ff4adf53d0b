"""The entry ritual (入会仪式), member numbers, welcome gifts and invitations (转介绍)."""
