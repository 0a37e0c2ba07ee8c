"""`python -m feedbot` is the `feedbot` command."""

from feedbot.cli import main

if __name__ == "__main__":
    main()
