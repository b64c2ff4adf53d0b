def add_parser(sub):  # placeholder replaced below
    pass
