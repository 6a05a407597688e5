"use strict";
document.title = "chat-server";
