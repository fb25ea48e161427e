"""Start the web chat: `python app.py --help` for options."""

from qa.web import main

if __name__ == "__main__":
    main()
