"""Wager check-in challenges (对赌打卡): stakes in escrow, settlement."""
