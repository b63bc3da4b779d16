/* Sign-In With Solana: connect an injected wallet (Phantom, Backpack, any provider with
   connect() and signMessage()), sign the server's message, post the base58 signature.
   Without a wallet (or without JavaScript) the forms work by hand. */
(function () {
  "use strict";
  var ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

  function base58(bytes) {
    var digits = [0];
    for (var i = 0; i < bytes.length; i++) {
      var carry = bytes[i];
      for (var j = 0; j < digits.length; j++) {
        carry += digits[j] << 8;
        digits[j] = carry % 58;
        carry = (carry / 58) | 0;
      }
      while (carry > 0) { digits.push(carry % 58); carry = (carry / 58) | 0; }
    }
    var out = "";
    for (var k = 0; k < bytes.length && bytes[k] === 0; k++) out += "1";
    for (var m = digits.length - 1; m >= 0; m--) out += ALPHABET[digits[m]];
    return out;
  }

  function provider() {
    return (window.phantom && window.phantom.solana) || window.backpack || window.solana || null;
  }

  function showError(err) {
    var box = document.createElement("p");
    box.className = "error";
    box.setAttribute("role", "alert");
    box.textContent = "Wallet: " + (err && err.message ? err.message : err);
    document.querySelector("main").prepend(box);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var wallet = provider();
    if (!wallet) return;
    var connect = document.getElementById("connect-wallet");
    if (connect) {
      connect.hidden = false;
      connect.addEventListener("click", async function () {
        try {
          var res = await wallet.connect();
          var key = (res && res.publicKey) || wallet.publicKey;
          document.getElementById("siws-address").value = key.toString();
          document.getElementById("siws-address-form").submit();
        } catch (err) { showError(err); }
      });
    }
    var sign = document.getElementById("sign-with-wallet");
    if (sign) {
      sign.hidden = false;
      sign.addEventListener("click", async function () {
        try {
          if (!wallet.publicKey && wallet.connect) await wallet.connect();
          var text = JSON.parse(document.getElementById("siws-message").textContent);
          var res = await wallet.signMessage(new TextEncoder().encode(text), "utf8");
          var sig = res && res.signature ? res.signature : res;
          document.getElementById("siws-signature").value = base58(new Uint8Array(sig));
          document.getElementById("siws-verify-form").submit();
        } catch (err) { showError(err); }
      });
    }
  });
})();
