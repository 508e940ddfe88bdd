"""The residents' side: the WeChat and Telegram transports and the conversation."""
