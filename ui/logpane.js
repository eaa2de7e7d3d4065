// The build log box: appends text, follows the end unless the reader has
// scrolled up, and offers a "jump to latest" button when it stopped following.

const NEAR_BOTTOM_PX = 24;

export class LogPane {
  constructor(pre, followButton) {
    this.pre = pre;
    this.followButton = followButton;
    this.following = true;
    this.length = 0;
    pre.addEventListener("scroll", () => {
      this.following = this.isNearBottom();
      if (this.following) this.followButton.hidden = true;
    });
    followButton.addEventListener("click", () => {
      this.following = true;
      this.followButton.hidden = true;
      this.scrollToEnd();
      this.pre.focus();
    });
  }

  isNearBottom() {
    const p = this.pre;
    return p.scrollHeight - p.scrollTop - p.clientHeight <= NEAR_BOTTOM_PX;
  }

  scrollToEnd() {
    this.pre.scrollTop = this.pre.scrollHeight;
  }

  /** Adds new text at the end; never touches what is already there. */
  append(text) {
    if (!text) return;
    this.pre.appendChild(document.createTextNode(text));
    this.length += text.length;
    if (this.following) this.scrollToEnd();
    else this.followButton.hidden = false;
  }

  /** Replaces everything (for an API without a `since` cursor). */
  replace(text) {
    this.pre.textContent = text;
    this.length = text.length;
    if (this.following) this.scrollToEnd();
  }

  clear() {
    this.pre.textContent = "";
    this.length = 0;
    this.following = true;
    this.followButton.hidden = true;
  }
}
