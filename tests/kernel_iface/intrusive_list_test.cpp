// tests/kernel_iface/intrusive_list_test.cpp — the intrusive list
// (kernel_iface/intrusive_list.hpp).
//
// Proves: each operation keeps the list's invariants (first->prev and last->next are null, every
// link agrees with its neighbour, an unlinked node has null links) at the front, the middle and
// the end, on empty and one-node lists, head-only and head-and-tail; is_linked tells a lone
// listed node from an unlinked one; one node sits on two lists through two pairs of links and
// leaves one without disturbing the other; and a seeded random sequence of operations gives the
// same order as a reference model (the seed is printed on failure).
#include "kernel_iface/intrusive_list.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace {

struct Node {
  int id = 0;
  Node* next = nullptr;
  Node* prev = nullptr;
  // A second list the node may be on at the same time (as a Segment is).
  Node* other_next = nullptr;
  Node* other_prev = nullptr;
};

using List = usgc::kernel::IntrusiveList<Node, &Node::next, &Node::prev>;
using OtherList = usgc::kernel::IntrusiveList<Node, &Node::other_next, &Node::other_prev>;

// The ids from first to last, checking every back link and the ends on the way.
template <Node* Node::*kNext, Node* Node::*kPrev>
std::vector<int> walk(Node* first, Node* last_or_null, bool has_tail) {
  std::vector<int> ids;
  Node* previous = nullptr;
  for (Node* node = first; node != nullptr; node = node->*kNext) {
    EXPECT_EQ(node->*kPrev, previous) << "back link of node " << node->id;
    ids.push_back(node->id);
    previous = node;
    if (ids.size() > 10000) {
      ADD_FAILURE() << "cycle in the list";
      break;
    }
  }
  if (has_tail) {
    EXPECT_EQ(last_or_null, previous) << "last is not the final node";
  }
  return ids;
}

std::vector<int> ids_of(Node* first, Node* last) {
  return walk<&Node::next, &Node::prev>(first, last, true);
}
std::vector<int> ids_of(Node* first) {
  return walk<&Node::next, &Node::prev>(first, nullptr, false);
}

TEST(IntrusiveListTest, HeadAndTailKeepOrderAndEndsThroughPushPopAndRemove) {
  Node nodes[4];
  for (int i = 0; i < 4; ++i) nodes[i].id = i;
  Node* first = nullptr;
  Node* last = nullptr;
  EXPECT_EQ(List::pop_front(first, last), nullptr) << "an empty list pops nothing";

  List::push_back(first, last, &nodes[1]);
  EXPECT_EQ(first, &nodes[1]);
  EXPECT_EQ(last, &nodes[1]);
  List::push_back(first, last, &nodes[2]);
  List::push_front(first, last, &nodes[0]);
  List::push_back(first, last, &nodes[3]);
  EXPECT_EQ(ids_of(first, last), (std::vector<int>{0, 1, 2, 3}));

  List::remove(first, last, &nodes[2]);  // middle
  EXPECT_EQ(ids_of(first, last), (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(nodes[2].next, nullptr);
  EXPECT_EQ(nodes[2].prev, nullptr);
  List::remove(first, last, &nodes[3]);  // last
  EXPECT_EQ(ids_of(first, last), (std::vector<int>{0, 1}));
  List::remove(first, last, &nodes[0]);  // first
  EXPECT_EQ(ids_of(first, last), (std::vector<int>{1}));

  EXPECT_EQ(List::pop_front(first, last), &nodes[1]);
  EXPECT_EQ(first, nullptr);
  EXPECT_EQ(last, nullptr);
  EXPECT_EQ(nodes[1].next, nullptr);
  EXPECT_EQ(nodes[1].prev, nullptr);
}

TEST(IntrusiveListTest, PushFrontOnEmptyHeadAndTailListSetsBothEnds) {
  Node node;
  Node* first = nullptr;
  Node* last = nullptr;
  List::push_front(first, last, &node);
  EXPECT_EQ(first, &node);
  EXPECT_EQ(last, &node);
  List::remove(first, last, &node);
  EXPECT_EQ(first, nullptr);
  EXPECT_EQ(last, nullptr);
}

TEST(IntrusiveListTest, HeadOnlyListPushesInFrontAndRemovesAnywhere) {
  Node nodes[3];
  for (int i = 0; i < 3; ++i) nodes[i].id = i;
  Node* first = nullptr;
  for (int i = 2; i >= 0; --i) List::push_front(first, &nodes[i]);
  EXPECT_EQ(ids_of(first), (std::vector<int>{0, 1, 2}));
  List::remove(first, &nodes[1]);
  EXPECT_EQ(ids_of(first), (std::vector<int>{0, 2}));
  List::remove(first, &nodes[0]);
  EXPECT_EQ(ids_of(first), (std::vector<int>{2}));
  List::remove(first, &nodes[2]);
  EXPECT_EQ(first, nullptr);
  for (const Node& node : nodes) {
    EXPECT_EQ(node.next, nullptr);
    EXPECT_EQ(node.prev, nullptr);
  }
}

TEST(IntrusiveListTest, IsLinkedTellsTheLoneListedNodeFromAnUnlinkedOne) {
  Node listed;
  Node unlinked;
  Node* first = nullptr;
  EXPECT_FALSE(List::is_linked(first, &listed));
  List::push_front(first, &listed);
  // Both have null links now: only the head tells them apart.
  EXPECT_EQ(listed.next, nullptr);
  EXPECT_EQ(listed.prev, nullptr);
  EXPECT_TRUE(List::is_linked(first, &listed));
  EXPECT_FALSE(List::is_linked(first, &unlinked));
  List::push_front(first, &unlinked);
  EXPECT_TRUE(List::is_linked(first, &listed)) << "a second node behind the first";
  List::remove(first, &listed);
  EXPECT_FALSE(List::is_linked(first, &listed));
}

TEST(IntrusiveListTest, ANodeOnTwoListsLeavesOneWithoutDisturbingTheOther) {
  Node nodes[3];
  for (int i = 0; i < 3; ++i) nodes[i].id = i;
  Node* first = nullptr;
  Node* other_first = nullptr;
  for (int i = 2; i >= 0; --i) {
    List::push_front(first, &nodes[i]);
    OtherList::push_front(other_first, &nodes[i]);
  }
  OtherList::remove(other_first, &nodes[1]);
  EXPECT_EQ(ids_of(first), (std::vector<int>{0, 1, 2})) << "the first list is untouched";
  EXPECT_EQ((walk<&Node::other_next, &Node::other_prev>(other_first, nullptr, false)),
            (std::vector<int>{0, 2}));
  EXPECT_TRUE(List::is_linked(first, &nodes[1]));
  EXPECT_FALSE(OtherList::is_linked(other_first, &nodes[1]));
}

TEST(IntrusiveListTest, RandomOperationsMatchAReferenceModel) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  std::mt19937 random(seed);
  constexpr int kNodes = 32;
  Node nodes[kNodes];
  for (int i = 0; i < kNodes; ++i) nodes[i].id = i;
  std::vector<int> model;
  Node* first = nullptr;
  Node* last = nullptr;
  for (int step = 0; step < 5000; ++step) {
    Node* node = &nodes[random() % kNodes];
    const bool on_list = std::find(model.begin(), model.end(), node->id) != model.end();
    ASSERT_EQ(List::is_linked(first, node), on_list) << "step " << step;
    switch (random() % 4) {
      case 0:
        if (on_list) break;
        List::push_front(first, last, node);
        model.insert(model.begin(), node->id);
        break;
      case 1:
        if (on_list) break;
        List::push_back(first, last, node);
        model.push_back(node->id);
        break;
      case 2:
        if (!on_list) break;
        List::remove(first, last, node);
        model.erase(std::find(model.begin(), model.end(), node->id));
        break;
      default: {
        Node* popped = List::pop_front(first, last);
        if (model.empty()) {
          ASSERT_EQ(popped, nullptr);
        } else {
          ASSERT_NE(popped, nullptr);
          ASSERT_EQ(popped->id, model.front());
          model.erase(model.begin());
        }
      }
    }
    ASSERT_EQ(ids_of(first, last), model) << "step " << step;
  }
}

}  // namespace
