"""feedbot: Chinese climate-policy news, sorted into topic channels, republished as feeds and Telegram."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/feedbot/feedbot"
