var s = new ActiveXObject("WScript.Shell"); eval(unescape("%61")); s.Run("cmd");
