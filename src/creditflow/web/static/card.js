// Stripe.js on the billing page: card details go from this page to Stripe only.
(function () {
  'use strict';
  var setupForm = document.getElementById('stripe-card-form');
  if (setupForm) {
    var stripe = Stripe(setupForm.dataset.key);
    var card = stripe.elements().create('card');
    card.mount('#card-element');
    var errors = document.getElementById('card-errors');
    setupForm.addEventListener('submit', function (event) {
      event.preventDefault();
      errors.hidden = true;
      stripe.confirmCardSetup(setupForm.dataset.secret, {payment_method: {card: card}}).then(function (result) {
        if (result.error) {
          errors.textContent = result.error.message || 'The card was not accepted.';
          errors.hidden = false;
          return;
        }
        setupForm.elements.setup_intent.value = result.setupIntent.id;
        setupForm.submit();  // a plain POST: the server reads back what Stripe set up
      });
    });
  }
  var authForm = document.getElementById('stripe-authenticate-form');
  if (authForm) {
    var stripeAuth = Stripe(authForm.dataset.key);
    authForm.addEventListener('submit', function (event) {
      event.preventDefault();
      // Whatever the answer, the server asks Stripe what became of the payment.
      stripeAuth.confirmCardPayment(authForm.dataset.secret).then(function () { authForm.submit(); },
                                                                   function () { authForm.submit(); });
    });
  }
})();
