/* Sign-In With Solana: find the browser's wallets, connect one, sign the server's message,
   post the base58 signature. Without a wallet (or without JavaScript) the forms work by hand.

   Wallets are found two ways:
   - the Wallet Standard (github.com/wallet-standard/wallet-standard): this page dispatches
     `wallet-standard:app-ready` on window with `{register}` as its detail, so wallets loaded
     before it register, and listens for `wallet-standard:register-wallet`, whose detail is a
     callback that it calls with `{register}`, so wallets loaded after it register too. A wallet
     qualifies when it has a `solana:` chain and the `standard:connect` and `solana:signMessage`
     features;
   - injected providers (window.phantom.solana, window.backpack, window.solana) with connect()
     and signMessage(), unless a Wallet Standard wallet of the same name was found.
   The wallet chosen on the first page is remembered (sessionStorage) for the signing page. */
(function () {
  "use strict";
  var ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  var STORAGE_KEY = "qv-siws-wallet";

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

  // --- Wallet Standard discovery ------------------------------------------------------------
  var standardWallets = [];
  var listeners = [];

  function qualifies(wallet) {
    var features = wallet && wallet.features;
    if (!features || !features["standard:connect"] || !features["solana:signMessage"]) return false;
    return (wallet.chains || []).some(function (chain) { return String(chain).indexOf("solana:") === 0; });
  }

  function register() {
    var added = Array.prototype.slice.call(arguments).filter(function (wallet) {
      return qualifies(wallet) && standardWallets.indexOf(wallet) < 0;
    });
    standardWallets = standardWallets.concat(added);
    if (added.length) listeners.forEach(function (fn) { fn(); });
    return function unregister() {
      standardWallets = standardWallets.filter(function (wallet) { return added.indexOf(wallet) < 0; });
      listeners.forEach(function (fn) { fn(); });
    };
  }

  var api = Object.freeze({ register: register });
  window.addEventListener("wallet-standard:register-wallet", function (event) {
    if (event && typeof event.detail === "function") {
      try { event.detail(api); } catch (err) { console.error("wallet registration failed", err); }
    }
  });
  try {
    window.dispatchEvent(new CustomEvent("wallet-standard:app-ready", { detail: api }));
  } catch (err) { console.error("wallet-standard:app-ready", err); }

  // --- the wallets this page can use --------------------------------------------------------
  function injected() {
    var found = [];
    var seen = [];
    [[window.phantom && window.phantom.solana, "Phantom"], [window.backpack, "Backpack"], [window.solana, null]]
      .forEach(function (pair) {
        var provider = pair[0];
        if (!provider || seen.indexOf(provider) >= 0 || typeof provider.signMessage !== "function") return;
        seen.push(provider);
        var name = pair[1] || (provider.isPhantom ? "Phantom" : provider.isBackpack ? "Backpack" : "Browser wallet");
        found.push({ name: name, icon: null, kind: "injected", provider: provider });
      });
    return found;
  }

  function choices() {
    var list = standardWallets.map(function (wallet) {
      return { name: String(wallet.name), icon: wallet.icon || null, kind: "standard", wallet: wallet };
    });
    var names = list.map(function (choice) { return choice.name; });
    injected().forEach(function (choice) {
      if (names.indexOf(choice.name) < 0) list.push(choice);
    });
    return list;
  }

  function bytesOf(value) {
    return value instanceof Uint8Array ? value : new Uint8Array(value);
  }

  // connect: the address to sign in with
  async function connect(choice) {
    if (choice.kind === "standard") {
      var result = await choice.wallet.features["standard:connect"].connect();
      var accounts = (result && result.accounts) || choice.wallet.accounts || [];
      if (!accounts.length) throw new Error(choice.name + " shared no account");
      return accounts[0].address;
    }
    var res = await choice.provider.connect();
    var key = (res && res.publicKey) || choice.provider.publicKey;
    return key.toString();
  }

  // sign: the signature bytes of `message` by `address`
  async function sign(choice, address, message) {
    if (choice.kind === "standard") {
      var wallet = choice.wallet;
      var account = (wallet.accounts || []).filter(function (a) { return a.address === address; })[0];
      if (!account) {
        var result = await wallet.features["standard:connect"].connect();
        account = ((result && result.accounts) || wallet.accounts || []).filter(function (a) {
          return a.address === address;
        })[0];
      }
      if (!account) throw new Error(choice.name + " has no account " + address);
      var outputs = await wallet.features["solana:signMessage"].signMessage({ account: account, message: message });
      return bytesOf(outputs[0].signature);
    }
    var provider = choice.provider;
    if (!provider.publicKey && provider.connect) await provider.connect();
    var res = await provider.signMessage(message, "utf8");
    return bytesOf(res && res.signature ? res.signature : res);
  }

  function showError(err) {
    var box = document.createElement("p");
    box.className = "error";
    box.setAttribute("role", "alert");
    box.textContent = "Wallet: " + (err && err.message ? err.message : err);
    document.querySelector("main").prepend(box);
  }

  function button(label, choice, onClick) {
    var el = document.createElement("button");
    el.type = "button";
    el.className = "primary wallet-choice";
    el.dataset.wallet = choice.name;
    if (choice.icon) {
      var img = document.createElement("img");
      img.src = choice.icon;
      img.alt = "";
      img.width = 18;
      img.height = 18;
      el.appendChild(img);
    }
    el.appendChild(document.createTextNode(label + " (" + choice.name + ")"));
    el.addEventListener("click", function () {
      onClick(choice).catch(showError);
    });
    return el;
  }

  // --- the two pages ------------------------------------------------------------------------
  function addressPage(box) {
    function render() {
      var list = choices();
      box.replaceChildren.apply(box, list.map(function (choice) {
        return button("Connect wallet", choice, async function (chosen) {
          var address = await connect(chosen);
          try { sessionStorage.setItem(STORAGE_KEY, chosen.name); } catch (err) { /* private mode */ }
          document.getElementById("siws-address").value = address;
          document.getElementById("siws-address-form").submit();
        });
      }));
      box.hidden = list.length === 0;
    }
    listeners.push(render);
    render();
  }

  function signPage(box) {
    var remembered = null;
    try { remembered = sessionStorage.getItem(STORAGE_KEY); } catch (err) { /* private mode */ }
    var form = document.getElementById("siws-verify-form");
    function render() {
      var list = choices();
      var mine = list.filter(function (choice) { return choice.name === remembered; });
      if (mine.length) list = mine;
      box.replaceChildren.apply(box, list.map(function (choice) {
        return button("Sign with wallet", choice, async function (chosen) {
          var text = JSON.parse(document.getElementById("siws-message").textContent);
          var signature = await sign(chosen, form.dataset.address, new TextEncoder().encode(text));
          document.getElementById("siws-signature").value = base58(signature);
          form.submit();
        });
      }));
      box.hidden = list.length === 0;
    }
    listeners.push(render);
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var connectBox = document.getElementById("wallet-connect");
    if (connectBox) addressPage(connectBox);
    var signBox = document.getElementById("wallet-sign");
    if (signBox) signPage(signBox);
  });
})();
