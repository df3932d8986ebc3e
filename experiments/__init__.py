"""Paper reproductions: one declaration per paper (experiments/<paper>.py), run by experiments/driver.py."""
